import { createContext, useContext } from "react";

/** The response's CSP nonce, provided by entry.server.tsx around the whole render (empty in the browser). */
const NonceContext = createContext<string | undefined>(undefined);
export const NonceProvider = NonceContext.Provider;
export const useNonce = () => useContext(NonceContext);
