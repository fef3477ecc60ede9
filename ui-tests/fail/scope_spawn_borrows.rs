async fn run() -> Result<(), klaw::Error> {
    let names = vec!["a".to_string()];
    klaw::scope!(|s| {
        s.spawn(async { names.len() });
        Ok(())
    })
}

fn main() {}
