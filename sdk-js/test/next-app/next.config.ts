import type { NextConfig } from 'next';

// Nothing bffgate-specific: @bffgate/client needs no transpilePackages or other setting.
const nextConfig: NextConfig = {
  // This directory lives inside the bffgate repository: keep Next.js from taking the
  // repository's lockfiles for the workspace root.
  outputFileTracingRoot: import.meta.dirname,
  turbopack: { root: import.meta.dirname },
};

export default nextConfig;
