#[klaw::task(blocking, timeout = "5s")]
fn hash(data: Vec<u8>) -> usize {
    data.len()
}

fn main() {}
