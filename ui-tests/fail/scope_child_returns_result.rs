// A scope child's `Err` must not be lost unnoticed, and a bare future (or closure) cannot say
// whether its `Err` is a failure or a value: the scope refuses it, and the refusal names
// `Task::fallible` (an `Err` fails the scope) and `Task::new` (the `Result` is a value).
async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(|s| {
        s.spawn(async { Err::<(), _>(std::io::Error::other("disk full")) });
        s.spawn_blocking(|| std::fs::read("klaw.toml"));
        Ok(())
    })
}

fn main() {}
