// A bad option does not throw the body away: it still expands (with the default setting), so
// the mistake inside it is reported too.
#[klaw::main(workers = 0)]
async fn main() {
    let count: u32 = "three";
    let _ = count;
}
