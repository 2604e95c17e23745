// A shopping cart whose total fails on an item without a price.
export function computeTotal(items) {
  let sum = 0;
  for (const item of items) {
    sum += item.price.amount;
  }
  return sum;
}
