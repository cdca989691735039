package pgstore

// ExtendSQL is DeliveryExtend's statement, for the EXPLAIN test.
const ExtendSQL = extendSQL
