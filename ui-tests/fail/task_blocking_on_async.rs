#[klaw::task(blocking)]
async fn hash(data: Vec<u8>) -> usize {
    data.len()
}

fn main() {}
