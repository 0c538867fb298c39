// JSON files lose TypeScript's string enums: "absolute" is a string, never the enum
// ThresholdsMode.Absolute. Loose<T> keeps every field, nesting, number and array of
// Grafana's types but lets a string stand where a string enum or literal is expected.
export type Loose<T> = T extends string
  ? string
  : T extends readonly (infer U)[]
    ? Loose<U>[]
    : T extends object
      ? { [K in keyof T]: Loose<T[K]> }
      : T;
