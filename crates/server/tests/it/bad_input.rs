//! Malformed, oversized and unauthorised requests: the server answers 4xx with a reason and keeps serving.
