pub mod bench;
pub mod compare;
pub mod freq;
pub mod info;
pub mod ntk;
pub mod reproduce;
pub mod solve;
pub mod train;
