// Something before the closure that is neither an option nor the closure (a name passed
// positionally instead of `name = "..."`).
async fn run() -> Result<(), klaw::Error> {
    klaw::scope!("fetch", |s| Ok(()))
}

fn main() {}
