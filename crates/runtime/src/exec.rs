//! `exec`: a new process in a running container, joining every namespace
//! and the cgroups of its init process (being written).
