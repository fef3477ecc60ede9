// A scope body may name its error type, but that type must hold klaw's own errors too (a
// failed child, a deadline): `std::io::Error` has no `From<klaw::Error>`.
async fn read_config() -> std::io::Result<Vec<u8>> {
    klaw::scope!(|_s| -> std::io::Result<Vec<u8>> { std::fs::read("klaw.toml") })
}

fn main() {}
