#[klaw::main]
fn main() {}
