// A scope body's named result type must be a `Result`.
async fn run() {
    let _ = klaw::scope!(|_s| -> u32 { 5 });
}

fn main() {}
