// A duration literal past `u64::MAX` nanoseconds (about 584 years).
#[klaw::task(timeout = "6000000000h")]
async fn fetch(id: u32) -> u32 {
    id
}

fn main() {}
