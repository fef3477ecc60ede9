// A bad arm whose body is a block needs no comma after it, and the arm after it is still read:
// its own mistake is reported too, and its body still checked.
async fn run(ready: bool, rx: klaw::channel::Receiver<u32>) {
    klaw::select! {
        rx.recv() -> msg, if ready => {
            drop(msg);
        }
        else => {}
        recv(rx) -> msg => {
            let count: u32 = "three";
            let _ = (count, msg);
        }
    }
}

fn main() {}
