#[klaw::task(retries = 3)]
async fn fetch(id: u32) -> u32 {
    id
}

fn main() {}
