// `crate` without a value: it takes the path klaw is known by, as a string.
#[klaw::task(crate)]
async fn fetch(id: u32) -> u32 {
    id
}

fn main() {}
