// `#[klaw::task(remote)]` with klaw's default features: one error, naming the `remote` feature.

#[klaw::task(remote)]
async fn double(x: u32) -> u32 {
    x * 2
}

fn main() {
    let _task = double(21);
}
