// `limit` without a value: it takes how many children may run at once.
async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(limit, |s| {
        s.spawn(async {});
        Ok(())
    })
}

fn main() {}
