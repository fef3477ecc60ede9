async fn run() -> Result<(), klaw::Error> {
    let escaped = klaw::scope!(|s| Ok(s.spawn(async { 1 })))?;
    let _ = escaped.await;
    Ok(())
}

fn main() {}
