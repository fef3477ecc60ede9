#[klaw::test]
async fn checks_something(input: u32) {
    drop(input);
}

fn main() {}
