//! Kernel TCP statistics (TCP_INFO) of a connected socket, on Linux.
