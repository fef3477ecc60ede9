//! Every klaw macro, used through a renamed dependency (`renamed_klaw`). `scope!` and `select!`
//! follow the rename by themselves (`$crate`); the attributes are told with `crate = "..."`, as
//! tokio's are. If generated code named `::klaw` anyway, this crate would not compile: it has
//! no dependency called `klaw`.

use std::time::Duration;

/// A task through the renamed crate.
#[renamed_klaw::task(name = "double", timeout = "5s", crate = "renamed_klaw")]
pub async fn double(x: u32) -> Result<u32, std::num::TryFromIntError> {
    u32::try_from(u64::from(x) * 2)
}

/// A scope and a select through the renamed crate.
pub async fn run() -> Result<u32, renamed_klaw::Error> {
    let (tx, rx) = renamed_klaw::channel::bounded::<u32>(1);
    let doubled = renamed_klaw::scope!(timeout = "5s", |s| {
        let child = s.spawn(double(21));
        Ok(child.await?)
    })?;
    tx.try_send(doubled)?;
    let got = renamed_klaw::select! {
        recv(rx) -> msg => msg?,
        after(Duration::from_secs(5)) => 0,
    };
    Ok(got)
}

#[cfg(test)]
mod tests {
    #[renamed_klaw::test(workers = 1, timeout = "10s", crate = "renamed_klaw")]
    async fn every_macro_works_under_a_renamed_dependency() {
        assert_eq!(super::run().await.unwrap(), 42);
    }
}
