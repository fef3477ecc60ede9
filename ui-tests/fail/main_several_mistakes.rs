// Every mistake is reported at once, each at its own tokens, and nothing else.
#[klaw::main(workers = 0, speed = 9)]
fn main(verbose: bool) {
    drop(verbose);
}
