import { snapIdFor } from './snap-id.js';

test('snap ids are 32 alphanumerics, the same for the same store and name', () => {
  const id = snapIdFor('example-store', 'hello-kiosk');
  expect(id).toMatch(/^[A-Za-z0-9]{32}$/);
  expect(snapIdFor('example-store', 'hello-kiosk')).toBe(id);
});

test('snap ids differ between names and between stores', () => {
  const id = snapIdFor('example-store', 'hello-kiosk');
  expect(snapIdFor('example-store', 'hello-kiosk2')).not.toBe(id);
  expect(snapIdFor('other-store', 'hello-kiosk')).not.toBe(id);
});
