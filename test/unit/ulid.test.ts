import { isUlid, normalizeUlid } from "../../src/core/ulid.js";

describe("isUlid", () => {
  it("accepts a canonical ULID in either case", () => {
    expect(isUlid("01ARZ3NDEKTSV4RRFFQ69G5FAV")).toBe(true);
    expect(isUlid("01arz3ndektsv4rrffq69g5fav")).toBe(true);
    expect(normalizeUlid("01arz3ndektsv4rrffq69g5fav")).toBe("01ARZ3NDEKTSV4RRFFQ69G5FAV");
  });
  it.each(["", "not-a-ulid", "01ARZ3NDEKTSV4RRFFQ69G5FA", "81ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAI", 42, null])(
    "rejects %p",
    (v) => expect(isUlid(v)).toBe(false),
  );
});
