#[klaw::main(workers = 2)]
async fn main() -> Result<(), klaw::Error> {
    let rt = klaw::Handle::current()?;
    let n: u32 = rt.spawn(klaw::Task::fallible(async { "3".parse::<u32>() })).await?;
    assert_eq!(n, 3);
    Ok(())
}
