//! Executors: where tasks run. They share one interface so the scheduler core
//! never knows whether a task runs on this thread, a worker thread, a worker
//! process or (later) a Dask cluster.

pub mod message;
