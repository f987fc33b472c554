export function App() {
  return (
    <main>
      <h1>ganserve</h1>
      <p>Playground coming soon. The API reference is at <a href="/docs">/docs</a>.</p>
    </main>
  );
}
