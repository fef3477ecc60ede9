// A bad option does not throw the scope's body away: the body's own mistake is reported too.
async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(timeout = "5 parsecs", |s| {
        let count: u32 = s.name();
        let _ = count;
        Ok(())
    })
}

fn main() {}
