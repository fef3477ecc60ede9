// An option after the closure, with no comma between: the error says the closure comes last
// (not syn's bare "expected `,`").
async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(|_s| Ok(()) supervisor)
}

fn main() {}
