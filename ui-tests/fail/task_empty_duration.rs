// An empty duration literal.
#[klaw::task(timeout = "")]
async fn fetch(id: u32) -> u32 {
    id
}

fn main() {}
