// scope! with nothing in it: it needs a closure.
async fn run() -> Result<(), klaw::Error> {
    klaw::scope!()
}

fn main() {}
