import { MemoryPersistence } from "../../../lib/broker/storage/memory_persistence.ts";
import { persistenceContract } from "./persistence_contract.ts";

persistenceContract("MemoryPersistence", () => {
  const store = new MemoryPersistence();
  return Promise.resolve({
    store,
    // The same instance loaded again is the memory store's restart.
    reopen: () => Promise.resolve(store),
    cleanup: () => Promise.resolve(),
  });
});
