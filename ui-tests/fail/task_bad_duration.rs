#[klaw::task(timeout = "5 seconds")]
async fn fetch(id: u32) -> u32 {
    id
}

fn main() {}
