// `deadline` without a value: it takes a `std::time::Instant`.
async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(deadline, |s| Ok(()))
}

fn main() {}
