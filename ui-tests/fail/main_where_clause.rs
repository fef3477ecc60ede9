// A where clause without generic parameters: still not a plain `fn main()`.
#[klaw::main]
async fn main()
where
    u8: Copy,
{
}
