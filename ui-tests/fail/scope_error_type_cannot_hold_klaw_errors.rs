// A scope body may name its error type, but that type must hold klaw's own errors too (a
// failed child, a deadline): this enum has no `From<klaw::Error>` (it lacks a
// `Klaw(#[from] klaw::Error)` variant). (A local type, so the message does not depend on which
// other crates are linked: `std::io::Error`'s list of `From` impls grows with klaw's features.)
#[derive(Debug, thiserror::Error)]
enum ConfigError {
    #[error("cannot read the configuration")]
    Read(#[from] std::io::Error),
}

async fn read_config() -> Result<Vec<u8>, ConfigError> {
    klaw::scope!(|_s| -> Result<Vec<u8>, ConfigError> { Ok(std::fs::read("klaw.toml")?) })
}

fn main() {}
