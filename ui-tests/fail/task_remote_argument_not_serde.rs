// A remote task's arguments travel to a worker: they must be serde types.
struct Credentials {
    token: String,
}

#[klaw::task(remote)]
async fn login(credentials: Credentials) -> usize {
    credentials.token.len()
}

fn main() {
    let _ = login(Credentials { token: String::new() });
}
