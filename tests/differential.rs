//! Differential tests: every corpus file in tests/corpus/ replayed on Debian's redis-server and on
//! slotway, replies compared byte for byte (see tests/support/corpus.rs for the line syntax).

mod support;

macro_rules! corpus {
    ($($name:ident),* $(,)?) => {
        $(#[test]
        fn $name() {
            support::corpus::check(stringify!($name));
        })*
    };
}

corpus!(
    connection,
    strings,
    keys,
    expiry,
    hashes,
    lists,
    sets,
    zsets,
    zsets_cross,
    dump,
    transactions,
    pubsub,
    server,
    client
);
