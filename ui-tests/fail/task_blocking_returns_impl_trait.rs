// A blocking task's body becomes a closure, and a closure's return type cannot be `impl Trait`:
// one error saying so. (With a lifetime bound first, `impl 'static + Trait`, the macro used to
// panic while it rewrote the signature.)
#[klaw::task(blocking)]
fn numbers() -> impl 'static + Iterator<Item = u32> {
    0..3
}

fn main() {}
