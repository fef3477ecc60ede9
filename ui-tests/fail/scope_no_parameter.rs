// A closure without a parameter: it takes the scope as its one parameter.
async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(|| Ok(()))
}

fn main() {}
