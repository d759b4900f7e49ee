/** The error classes live in the shared kernel (the store throws some of them too); domain code imports them here. */
export * from "../shared/errors";
