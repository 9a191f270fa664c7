/** A minimal typed event stream: views subscribe, the engine emits. */
export type Unsubscribe = () => void;

export class Emitter<T> {
  private listeners: Array<(event: T) => void> = [];

  on(listener: (event: T) => void): Unsubscribe {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  emit(event: T): void {
    for (const listener of this.listeners) listener(event);
  }
}
