#[klaw::main]
struct App;

fn main() {}
