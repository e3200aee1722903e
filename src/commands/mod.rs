pub mod freq;
pub mod gpu_check;
pub mod info;
pub mod ntk;
pub mod reproduce;
pub mod solve;
pub mod train;
