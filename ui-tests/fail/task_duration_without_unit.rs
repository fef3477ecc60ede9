#[klaw::task(timeout = "500")]
async fn fetch(id: u32) -> u32 {
    id
}

fn main() {}
