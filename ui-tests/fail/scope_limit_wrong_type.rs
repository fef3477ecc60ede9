async fn run(parallel: u32) -> Result<(), klaw::Error> {
    klaw::scope!(limit = parallel, |s| {
        s.spawn(async {});
        Ok(())
    })
}

fn main() {}
