// `name` without a value: it takes a string literal.
#[klaw::task(name)]
async fn fetch(id: u32) -> u32 {
    id
}

fn main() {}
