#[klaw::task]
struct Fetch;

fn main() {}
