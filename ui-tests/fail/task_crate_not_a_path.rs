// `crate` names the path klaw is known by, as a string; this is neither.
#[klaw::task(crate = "my klaw")]
async fn fetch() -> u32 {
    1
}

#[klaw::test(crate = renamed_klaw)]
async fn fetches() {
    assert_eq!(fetch().await, 1);
}

fn main() {}
