use std::rc::Rc;

#[klaw::task]
async fn count(items: Vec<u32>) -> usize {
    let shared = Rc::new(items);
    klaw::time::sleep(std::time::Duration::from_millis(1)).await;
    shared.len()
}

fn main() {}
